import sys

from vlm_tf.cli import main

sys.exit(main())
