"""Training data: CelebA HDF5 pairs, face photos, rendered faces, ``tf.data``.

* :mod:`~bioface_tf.data.celeba` — the ``zx_7`` image/lighting HDF5 files;
* :mod:`~bioface_tf.data.shading` — diffuse shading from normals and SH lighting;
* :mod:`~bioface_tf.data.photos` — face photos: detect, crop, mask;
* :mod:`~bioface_tf.data.synth` — faces rendered through the physics decoder;
* :mod:`~bioface_tf.data.pipeline` — the ``tf.data`` pipeline;
* :mod:`~bioface_tf.data.inspect` — a streaming summary and the checks on it.

TensorFlow is imported only by the pipeline and the renderer.
"""

from bioface_tf.data.celeba import CelebAFaces
from bioface_tf.data.photos import PhotoFaces

__all__ = ["CelebAFaces", "PhotoFaces"]
