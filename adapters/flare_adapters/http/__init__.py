"""The HTTP API shared by the server and the HTTP client: the route table and OpenAPI."""
