"""Data layer: dataset manifests, protocol splits, image decoding and the tf.data pipeline."""
