from __future__ import annotations

import sys

from stack.launcher import main

sys.exit(main())
