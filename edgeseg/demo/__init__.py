"""Live demos of an exported model: desktop (OpenCV), browser (LiteRT.js); all read `edgeseg.json`."""
