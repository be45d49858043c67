#!/usr/bin/env python3
"""The contact_discovery worker before pgwake (started by supervisor.conf)."""
import sys

import poll

sys.exit(poll.main("contact_discovery"))
