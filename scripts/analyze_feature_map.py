"""keras-zoo analyze-features as a script (feature maps, and of a Vision Transformer its
attention maps): python scripts/analyze_feature_map.py --help"""

import sys

from keras_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyze-features", *sys.argv[1:]]))
