"""model: typed, pure data shared by every stage."""
