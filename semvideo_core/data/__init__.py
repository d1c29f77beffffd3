"""Raw-data layouts and readers/writers: CIFTI, video, HDF5 stores."""
