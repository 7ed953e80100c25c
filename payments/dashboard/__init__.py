"""The accounting dashboard: figures read from our own tables, drawn as inline SVG in admin."""
