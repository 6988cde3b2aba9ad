"""Rewrites zoo/options.json, the zoo's models' constructor options that ``zoo train --set``
reads without importing the models (run it after a model's constructor changes; a test in
tests/zoo/test_startup.py fails while the file is stale).

    python tools/write_registry_options.py
"""

from zoo import registry

if __name__ == "__main__":
    registry.write_option_table()
    print(f"wrote {registry.OPTIONS_FILE}")
