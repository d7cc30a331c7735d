"""com.edgeml.Runtime: creates the device's inference venv (standard library only)."""
