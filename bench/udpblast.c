/* udpblast: a closed-loop UDP load generator over many distinct requests, in C, so the
 * generator is not what limits a benchmark of the node (bench/store_path.py builds it).
 * From the project's shared measuring tools (udpblast2.c), unchanged below this comment.
 */
// udpblast2: closed-loop UDP load generator over many distinct requests.
// usage: udpblast2 HOST PORT REQFILE CONCURRENCY SECONDS
// REQFILE holds requests as [u16 big-endian length][bytes] records; they are sent round-robin.
// Prints replies/s and how many replies carried response code 1 (success) at bytes 24..27.
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int argc,char**argv){
  if(argc<6){fprintf(stderr,"usage: udpblast2 HOST PORT REQFILE CONC SECS\n");return 2;}
  struct sockaddr_in a={0};a.sin_family=AF_INET;a.sin_port=htons(atoi(argv[2]));inet_pton(AF_INET,argv[1],&a.sin_addr);
  FILE*f=fopen(argv[3],"rb");if(!f){perror("reqfile");return 2;}
  fseek(f,0,SEEK_END);long fl=ftell(f);fseek(f,0,SEEK_SET);
  unsigned char*all=malloc(fl);if(fread(all,1,fl,f)!=(size_t)fl){perror("read");return 2;}fclose(f);
  int cap=1024,nreq=0;unsigned char**req=malloc(cap*sizeof*req);int*len=malloc(cap*sizeof*len);
  for(long p=0;p+2<=fl;){int l=(all[p]<<8)|all[p+1];p+=2;if(p+l>fl)break;
    if(nreq==cap){cap*=2;req=realloc(req,cap*sizeof*req);len=realloc(len,cap*sizeof*len);}
    req[nreq]=all+p;len[nreq]=l;nreq++;p+=l;}
  if(!nreq){fprintf(stderr,"no requests\n");return 2;}
  int conc=atoi(argv[4]);double secs=atof(argv[5]);
  int s=socket(AF_INET,SOCK_DGRAM,0);connect(s,(void*)&a,sizeof a);
  struct timeval tv={0,200000};setsockopt(s,SOL_SOCKET,SO_RCVTIMEO,&tv,sizeof tv);
  int sz=4<<20;setsockopt(s,SOL_SOCKET,SO_RCVBUF,&sz,sizeof sz);
  long sent=0,got=0,ok=0,bytes=0,next=0;unsigned char buf[65536];
  double t0=now(),end=t0+secs;
  for(int i=0;i<conc;i++){send(s,req[next],len[next],0);next=(next+1)%nreq;sent++;}
  while(now()<end){
    int r=recv(s,buf,sizeof buf,0);
    if(r>0){got++;bytes+=r;if(r>=28&&buf[24]==0&&buf[25]==0&&buf[26]==0&&buf[27]==1)ok++;
      send(s,req[next],len[next],0);next=(next+1)%nreq;sent++;}
    else{for(int i=0;i<conc/4+1;i++){send(s,req[next],len[next],0);next=(next+1)%nreq;sent++;}}
  }
  double dt=now()-t0;
  printf("requests=%d sent=%ld replies=%ld ok=%ld secs=%.2f rps=%.0f avg_reply_bytes=%.0f\n",nreq,sent,got,ok,dt,got/dt,got?(double)bytes/got:0);
  return 0;
}
