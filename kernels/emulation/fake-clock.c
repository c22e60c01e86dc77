// State the stand-in's copies share (fake-cuda.cpp is loaded once per NVIDIA soname, as separate copies): it lives in
// its own library so that every copy sees the same.
// The virtual clock: simulated device time that the events of fake-cuda.cpp add to the host clock.
long long fake_virtual_ns = 0;
// The stream capture under way (a FakeGraph of fake-cuda.cpp), or null: cuBLAS and cuDNN calls on a capturing stream
// are recorded into the same graph as libcuda's launches.
void* fake_capture = 0;
