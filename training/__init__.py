"""Training entry points, presets and callbacks for BioFaceNet."""
