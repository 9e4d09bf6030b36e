"""TensorFlow (Keras) twins of the extension blocks, for YOLOv5's SavedModel, GraphDef and TFLite exports.

YOLOv5 exports to the TensorFlow formats by rebuilding the PyTorch model layer by layer in Keras
(``models/tf.py``): every module of a model needs a ``TF<Name>`` twin that takes the PyTorch module ``w`` whose
weights it copies and computes the same function on NHWC tensors. patches/0014 makes ``models/tf.py`` find the
twin of a registered block through :func:`extensions.registry.tf_twin`: by default
``extensions.tf.<family module>.TF<ClassName>``, one module here per family module of ``extensions/``:

* :mod:`extensions.tf.layers`: activations, the conv twin (YOLOv5 ``Conv``/``BiasConv``/``nn.Conv2d``, fused or
  not, grouped), average pools, squeeze-excite, drop path, the ResNet-D shortcut and the C3 frame;
* :mod:`extensions.tf.res2net`, :mod:`extensions.tf.resnest`, :mod:`extensions.tf.resnet_rs`: the blocks;
* :mod:`extensions.tf.deploy`: the float32 TFLite model, the metadata YOLOv5 reads back, and the TFLite
  interpreter used for inference (:mod:`extensions.deploy.measure` measures the TF formats beside the others).

A block registered with ``tf=NO_TF_TWIN`` (:data:`extensions.registry.NO_TF_TWIN`) declares that it has no twin:
the TensorFlow exports then stop with :class:`~extensions.registry.MissingTwinError` naming it, and the TensorFlow
export tests skip the models that use it, giving that reason.

Only these modules import TensorFlow, and only when a TensorFlow export or model is used: the block modules and
YOLOv5's own imports never do.

Import order: this package imports torchvision before any of its modules imports TensorFlow. With TensorFlow 2.21
loaded first, a later ``import torchvision`` (which imports triton through ``torch._dynamo``) kills the process
with a segmentation fault and no message; in the other order both work. YOLOv5's entry points import torchvision
at start, so this only matters to scripts and tests that import these modules first.
"""

import importlib.util
import sys

if ('tensorflow' in sys.modules and not {'torchvision', 'triton'} & set(sys.modules)
        and importlib.util.find_spec('triton') is not None):  # importing torchvision now would crash the process
    raise ImportError('TensorFlow was imported before torchvision: with TensorFlow 2.21, importing torchvision '
                      'afterwards kills the process (segmentation fault in triton). Fix: import torchvision (or '
                      'YOLOv5, e.g. models.common) before tensorflow')

import torchvision  # noqa: F401  (before TensorFlow, see above)
