import sys

from ulsam_nas.cli import main

sys.exit(main())
