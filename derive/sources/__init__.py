"""Ways to build a `Network`: spec files (TOML/JSON) and built-in examples."""
