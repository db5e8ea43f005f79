-- Changes when another connection commits to the file (this connection's own commits leave it):
-- how a waiting claim or waitJob notices other processes' writes.
PRAGMA data_version;
