import sys

from keras_zoo.cli import main

sys.exit(main())
