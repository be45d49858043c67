#!/usr/bin/env python3
"""The company_research worker before pgwake (started by supervisor.conf)."""
import sys

import poll

sys.exit(poll.main("company_research"))
