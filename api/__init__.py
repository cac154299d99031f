"""The HTTP API of jobctl: the FastAPI app (`api.app.create_app`), auth, error mapping and routes."""
