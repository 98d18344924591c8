"""Speed and search-quality measurements (``make bench``); each module prints ``key: value`` lines."""
