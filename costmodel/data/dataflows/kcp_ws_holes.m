// KC-P, weight stationary, with holes: output channels K across PE clusters, a tile of ?c input
// channels per step, spread over the ?p PEs of a cluster; sliding windows over Y and X in time.
// Holes: ?c (input-channel tile), ?p (PEs per cluster). kcp_ws.m is this dataflow with ?c = ?p = 64.
// Source: Kwon et al., "Understanding Reuse, Performance, and Hardware Cost of DNN Dataflows: A
// Data-Centric Approach", MICRO 2019 (the KC-P dataflow, NVDLA-style).
Dataflow {
	SpatialMap(1,1) K;
	TemporalMap(?c,?c) C;
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
	TemporalMap(Sz(R),1) Y;
	TemporalMap(Sz(S),1) X;
	Cluster(?p, P);
	SpatialMap(1,1) C;
	TemporalMap(Sz(R),1) Y;
	TemporalMap(Sz(S),1) X;
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
}
