"""Serving: SavedModel and TFLite export, and a client for TF Serving's REST API."""
