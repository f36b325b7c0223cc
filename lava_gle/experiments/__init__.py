"""The paper's experiments, run end to end by ``lava-gle experiment NAME``.

One module per experiment (:mod:`~lava_gle.experiments.lagline`,
:mod:`~lava_gle.experiments.mnist1d`, :mod:`~lava_gle.experiments.yinyang`) plus
the shared pieces: :mod:`~lava_gle.experiments.checkpoint` (save/resume, Ctrl-C),
:mod:`~lava_gle.experiments.metrics` (log, metrics.json, figures),
:mod:`~lava_gle.experiments.rules` (the learning-rule options),
:mod:`~lava_gle.experiments.training` (the streamed classification loop),
:mod:`~lava_gle.experiments.fixed_training` (what a run in fixed point adds) and
:mod:`~lava_gle.experiments.classification` (train, measure, write the results).
Experiments use the engines of :mod:`lava_gle.backends`; they hold no GLE maths.
"""
