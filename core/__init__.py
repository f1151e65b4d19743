"""What every app shares and that holds no rows: the API's error format, permissions and
schema helpers (api.py), its pages (pagination.py), the limit errors (errors.py) and local
copies of stored files (storage.py).

It sits below every app and imports none of them, nor the project package `imagineer/`.
"""
