// Weight-stationary KC-P dataflow (NVDLA-style): output channels K across PE clusters, input
// channels C across the PEs of a cluster, sliding windows over Y and X in time.
// Source: Kwon et al., "Understanding Reuse, Performance, and Hardware Cost of DNN Dataflows: A
// Data-Centric Approach", MICRO 2019 (the KC-P dataflow).
Dataflow {
	SpatialMap(1,1) K;
	TemporalMap(64,64) C;
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
	TemporalMap(Sz(R),1) Y;
	TemporalMap(Sz(S),1) X;
	Cluster(64, P);
	SpatialMap(1,1) C;
	TemporalMap(Sz(R),1) Y;
	TemporalMap(Sz(S),1) X;
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
}
