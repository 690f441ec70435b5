"""write: one writer per format (HTML, CSV, JSON), charts and run history."""
