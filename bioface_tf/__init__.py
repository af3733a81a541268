"""BioFace-TF: BioFaceNet (Alotaibi & Smith, BMVC 2019) in TensorFlow/Keras.

Subpackages:
    spectra: spectral tables and derived physics constants (NumPy).
    physics: the hand-crafted spectral decoder as Keras layers.
"""

__version__ = "0.1.0"
