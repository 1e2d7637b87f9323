"""Building blocks several methods share: transformer components, the projector, input
modalities and token layouts, official state-dict helpers, the portable initialisation and the
encoder file. Each method's own model code lives in its folder, ``skelrep.methods.<name>``."""
