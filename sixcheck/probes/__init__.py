"""The probe library: one module per kind of probe. Nothing here imports pytest or asserts."""
