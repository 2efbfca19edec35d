"""Serving: SavedModel and TFLite export, a client for TF Serving's REST API, and the local web app (``app``)."""
