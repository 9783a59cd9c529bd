"""Pure conversion of Hypersim frames to the reference converter's layout: numpy in, numpy out, plus the HDF5 frame reader and the frame/scene converters that write files."""
