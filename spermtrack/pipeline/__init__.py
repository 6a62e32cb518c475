"""The chaining of the stages, and nothing else:

- :mod:`~spermtrack.pipeline.stream`: one streaming pass, decode -> enhance -> detect -> track;
- :mod:`~spermtrack.pipeline.analyze`: one video in, a complete result folder out;
- :mod:`~spermtrack.pipeline.results`: the result tables and ``summary.json`` content;
- :mod:`~spermtrack.pipeline.batch`: many videos on Dask; :mod:`~spermtrack.pipeline.sample`:
  fields of one sample pooled; :mod:`~spermtrack.pipeline.plausibility`: sanity warnings;
- :mod:`~spermtrack.pipeline.visem`: a VISEM-Tracking copy analysed and scored against its labels
  and the lab (the library behind ``spermtrack visem``);
- :mod:`~spermtrack.pipeline.stages`: configuration sections to stage objects.

The stages themselves (:mod:`spermtrack.detect`, :mod:`spermtrack.tracker`,
:mod:`spermtrack.kinematics`, :mod:`spermtrack.morphology`, :mod:`spermtrack.report`) never
import this package.
"""
