"""One module per model family; each registers its builders with :func:`genrenet.register_model`."""
