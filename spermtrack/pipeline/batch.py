"""Many videos on Dask distributed: a local cluster by default, or an existing one by address.

- One task per video (:func:`analyze_task`), each writing its own ``OUT/<stem>/`` folder with
  :func:`spermtrack.pipeline.analyze.analyze_video`; tasks never share files.
- **Resumable**: a video whose folder already holds a complete analysis (``summary.json`` with
  ``"status": "complete"``, written last) is skipped; rerun the same command after an
  interruption and only the unfinished videos run.
- **A failing video is reported, the others finish**: the task catches the error and returns it
  as a record (one line: the video and the problem); the batch ends with a non-zero status.
- ``OUT/batch_summary.csv`` (one row per video: status, key results, time, error) is rewritten
  atomically as results arrive, so it is readable at any moment.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Callable

import pandas as pd

from spermtrack.errors import ParameterError, SpermtrackError, user_message

BATCH_COLUMNS = ("video", "status", "out_dir", "n_frames", "n_graded", "progressive_pct", "total_motility_pct",
                 "immotile_pct", "um_per_px", "um_per_px_source", "truncated", "seconds", "error")


def _record(video: Path, out_dir: Path, status: str, meta: dict | None = None, seconds: float = 0.0,
            error: str = "") -> dict:
    rec = {c: None for c in BATCH_COLUMNS}
    rec.update(video=str(video), status=status, out_dir=str(out_dir), seconds=round(seconds, 2), error=error)
    if meta is not None:
        s = meta["summary"][meta["primary_aggregate"]]
        pct = {r["quantity"]: r["pct"] for r in s["table"]}
        rec.update(n_frames=meta["n_frames_analysed"], n_graded=s["n_graded"],
                   progressive_pct=round(pct["progressive"], 1), total_motility_pct=round(pct["total_motility"], 1),
                   immotile_pct=round(pct["immotile"], 1), um_per_px=meta["calibration"]["um_per_px"],
                   um_per_px_source=meta["calibration"]["um_per_px_source"], truncated=meta["truncated"])
    return rec


def analyze_task(video: str, out_dir: str, config: dict, fps: float | None, um_per_px,
                 ids: dict | None = None) -> dict:
    """Analyse one video (runs on a worker); never raises: errors come back as a record."""
    from spermtrack.pipeline.analyze import analyze_video
    from spermtrack.config import Config

    t0 = time.perf_counter()
    video_p, out_p = Path(video), Path(out_dir)
    try:
        res = analyze_video(video_p, out_p.parent, config=Config.from_dict(config), fps=fps, um_per_px=um_per_px,
                            progress=False, echo=lambda s: None, out_dir=out_p, **(ids or {}))
    except (SpermtrackError, OSError) as err:
        return _record(video_p, out_p, "failed", seconds=time.perf_counter() - t0, error=user_message(err))
    except Exception as err:  # noqa: BLE001 - a bug on one video must not stop the batch
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return _record(video_p, out_p, "failed", seconds=time.perf_counter() - t0,
                       error=f"internal error {type(err).__name__}: {err} [{tb}]")
    return _record(video_p, out_p, "ok", res.meta, seconds=time.perf_counter() - t0)


def _client(workers: int | None, scheduler: str | None):
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as err:
            raise SpermtrackError(f"cannot reach the Dask scheduler at {scheduler} ({type(err).__name__}: {err})") from None
    n = 2 if workers is None else int(workers)
    if not 1 <= n <= 256:
        raise ParameterError(f"--workers {workers!r} must be between 1 and 256")
    # processes, one thread each: decoding and numba release the GIL only partly; loopback only
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=40)
    return Client(cluster), cluster


def run_batch(videos: list[str | Path], out: str | Path, *, config=None, fps: float | None = None,
              um_per_px=None, workers: int | None = None, scheduler: str | None = None,
              echo: Callable[[str], None] = print, sample_id: str | None = None, patient_id: str | None = None,
              sample: str | None = None) -> pd.DataFrame:
    """Analyse ``videos`` on a Dask cluster into ``out/<stem>/`` folders.

    Args:
        videos: video files (duplicates are dropped; same stems in different folders get
            ``<parent>_<stem>`` folders).
        out: output root.
        config: :class:`~spermtrack.config.Config` for every video.
        fps, um_per_px: as for :func:`spermtrack.pipeline.analyze.analyze_video` (shared by all videos).
        workers: worker processes of the local cluster (default 2).
        scheduler: ``tcp://HOST:PORT`` of an existing cluster (then ``workers`` is ignored);
            its workers must see the same paths.
        echo: where one line per finished video goes.
        sample_id, patient_id: recorded in every video's results.
        sample: the name of the sample these videos are fields of (checked here not to clash
            with a video's folder; pooling is :func:`spermtrack.pipeline.sample.pool_sample`).

    Returns:
        The batch table (:data:`BATCH_COLUMNS`), also written to ``out/batch_summary.csv``.
    """
    from spermtrack.config import check_config
    from spermtrack.pipeline.analyze import is_complete
    from spermtrack.pipeline.analyze import unique_out_dirs
    from spermtrack.config import Config
    from spermtrack.io.atomic import write_csv_atomic

    cfg = check_config(config or Config())
    if workers is not None and not 1 <= int(workers) <= 256:
        raise ParameterError(f"--workers {workers!r} must be between 1 and 256")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vids = list(dict.fromkeys(Path(v).resolve() for v in videos))
    if not vids:
        raise ParameterError("no video given")
    dirs = unique_out_dirs(vids, out.resolve())
    if sample is not None:
        from spermtrack.pipeline.sample import check_sample_name

        check_sample_name(sample, list(dirs.values()), out.resolve())
    ids = {"sample_id": sample_id, "patient_id": patient_id}
    records: dict[Path, dict] = {}
    todo = []
    for v in vids:
        if is_complete(dirs[v]):
            records[v] = _record(v, dirs[v], "skipped (already complete)")
            echo(f"{v.name}: already complete, skipped")
        else:
            todo.append(v)

    def save() -> None:
        rows = [records[v] for v in vids if v in records]
        write_csv_atomic(out / "batch_summary.csv", pd.DataFrame(rows, columns=list(BATCH_COLUMNS)))

    if todo:
        from distributed import as_completed

        client, cluster = _client(workers, scheduler)
        try:
            futures = {client.submit(analyze_task, str(v), str(dirs[v]), cfg.to_dict(), fps, um_per_px, ids,
                                     key=f"analyze-{i}-{v.stem}", pure=False): v for i, v in enumerate(todo)}
            for fut in as_completed(futures):
                v = futures[fut]
                try:
                    rec = fut.result()
                except Exception as err:  # noqa: BLE001 - a worker died (memory, kill): report, go on
                    rec = _record(v, dirs[v], "failed", error=f"worker lost ({type(err).__name__}: {err})")
                records[v] = rec
                save()
                if rec["status"] == "ok":
                    echo(f"{v.name}: ok, {rec['n_graded']} graded, PR {rec['progressive_pct']} %, "
                         f"total motility {rec['total_motility_pct']} % [{rec['seconds']:.1f} s]")
                else:
                    echo(f"{v.name}: FAILED: {rec['error']}")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    save()
    return pd.DataFrame([records[v] for v in vids], columns=list(BATCH_COLUMNS))
