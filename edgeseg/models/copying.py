"""Copies of models, so a stage never changes the model it was given."""

from edgeseg._keras import keras


def copy_model(model, wrap=None):
    """A new functional model with fresh layers holding copies of `model`'s weights.

    `wrap(layer)` may return a TF-MOT wrapper around the fresh layer; it receives the layer with
    its weights already set, since clustering initializes its centroids from them.

    Example::

        for_pruning = copy_model(model, wrap=lambda layer: prune_low_magnitude(layer))
    """

    def clone_layer(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if layer.weights:
            fresh.build(layer.input_shape)
            fresh.set_weights(layer.get_weights())
        return wrap(fresh) if wrap else fresh

    return keras.models.clone_model(model, clone_function=clone_layer)
