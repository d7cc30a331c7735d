"""`python -m edgeml_runtime ...`: the Runtime component's Install step."""

import sys

from edgeml_runtime.installer import main

sys.exit(main())
