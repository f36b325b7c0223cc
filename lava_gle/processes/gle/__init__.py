"""GLE neuron populations and plastic GLE projections as Lava Processes."""
