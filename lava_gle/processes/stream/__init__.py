"""A Lava source Process that streams the input and target arrays, one row per step."""
