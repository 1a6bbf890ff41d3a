"""The console's server side: the REST API (and, later, socket.io namespaces and the web app)."""
