#!/usr/bin/perl
# runpm.pl SOCKET PROGRAM ARGS... - run one Postfix multi_server daemon (the
# C proxymap, the oracle of the table tests) without master(8), so that one
# client connection can carry many requests (proxymap -S answers only one).
# It gets what master would give it: the listening UNIX socket on fd 6, the
# status pipe on fd 5 (we keep its read end open; closing it tells the
# daemon to exit), the flow-control pipe on fds 3 and 4.
# Prints "ready PID" once the socket listens; when standard input closes,
# ends the daemon and prints "exit STATUS".
use strict; use warnings; use IO::Socket::UNIX; use POSIX ();
my ($path, @cmd) = @ARGV;
unlink $path;
my $srv = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $path, Listen => 64) or die "listen $path: $!";
pipe(my $sr, my $sw) or die; pipe(my $fr, my $fw) or die;
my $pid = fork(); die "fork: $!" unless defined $pid;
if ($pid == 0) {
  my @src = map { POSIX::dup(fileno($_)) } ($fr, $fw, $sw, $srv);
  for my $i (0..3) { POSIX::dup2($src[$i], 3 + $i) or die "dup2: $!"; }
  POSIX::close($_) for grep { $_ > 6 } @src;
  exec @cmd or die "exec $cmd[0]: $!";
}
close $sw; close $srv; close $fr; 
$| = 1; print "ready $pid\n";
while (<STDIN>) {}
close $sr; kill 'TERM', $pid; waitpid $pid, 0; print "exit ", $? >> 8, "\n";
