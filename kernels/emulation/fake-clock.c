// The stand-in's virtual clock: simulated device time that the events of fake-cuda.cpp add to the host clock. It lives in
// its own library because the stand-in is loaded once per NVIDIA soname, as separate copies that must share it.
long long fake_virtual_ns = 0;
