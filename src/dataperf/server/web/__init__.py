"""The web pages: server-rendered (Jinja2), a little JavaScript written here, SVG charts."""
