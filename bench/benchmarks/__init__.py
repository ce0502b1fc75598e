"""One module per row group of the issue's table; each has `run(ctx) -> list[Result]`."""
