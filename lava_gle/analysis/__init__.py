"""Fixed point against float: :mod:`~lava_gle.analysis.comparison` runs two backends on the
same streams and measures every variable (errors, verdicts with causes, task metrics,
saturation); :mod:`~lava_gle.analysis.report` writes its metrics, figures and HTML report
(``lava-gle compare``; ``lava-gle sweep`` repeats it over fixed-point settings)."""
