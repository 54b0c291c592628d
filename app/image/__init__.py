"""The image stage: the build context, the wheelhouse, and building the image."""
