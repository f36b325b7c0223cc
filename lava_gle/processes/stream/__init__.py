"""A Lava source Process that streams a [steps, n] array, one row per step."""
