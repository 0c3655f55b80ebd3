"""Family modules: importing one registers its variants."""

from keras_zoo.models import resnet  # noqa: F401
from keras_zoo.models import mobilenet  # noqa: F401
from keras_zoo.models import shufflenet  # noqa: F401
