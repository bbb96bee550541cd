//! Streaming pcap/pcapng reader and writer with IP defragmentation and TCP reassembly for SIP traffic.
