"""A whole GLE network as one Lava Process (simulated by one fused CPU model)."""
