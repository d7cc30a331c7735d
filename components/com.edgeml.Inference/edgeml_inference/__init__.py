"""edgeml_inference: the device inference app of the com.edgeml.Inference Greengrass component.

source -> preprocess -> (batching queue) -> backend -> postprocess -> sinks. Run it as
`python -m edgeml_inference`. It imports only the standard library, numpy, pillow, onnxruntime, dlr (lazily),
awsiot and stream_manager: never the cloud-side `edgeml` package.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
