"""Input and output: video (PyAV), VISEM-Tracking, MOTChallenge, atomic exports."""
