"""What is inside a distribution file: bundled native libraries, SBOMs, code findings."""
