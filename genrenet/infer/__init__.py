"""A model you can run, and what it does: model sources and :class:`~genrenet.infer.classifier.Classifier`
(presets, runs, exports, ``.tflite`` files), one windowing loop under predict, evaluate, embed and the
frozen-backbone features, genre timelines, ensembles and prediction on Apache Beam."""
